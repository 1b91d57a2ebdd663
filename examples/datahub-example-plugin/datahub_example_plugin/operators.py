"""Registers the `addVat` operator when Datahub loads the `datahub.plugins` entry points."""

from pipelines.custom import register_operator


def add_vat(records, args, helpers):
    """gross = net * (1 + rate), rounded to cents; a record without a numeric net fails alone."""
    rate = args.get("rate", 0.19)
    target = args.get("target", "gross")
    out = []
    for record in records:
        net = record.get(args.get("source", "net"))
        if not isinstance(net, int | float) or isinstance(net, bool):
            raise ValueError(f"net must be a number, got {net!r}")
        out.append({**record, target: round(net * (1 + rate), 2)})
    return out


register_operator(
    code="addVat",
    name="Add VAT",
    category="pricing",
    description="Adds a gross price: net * (1 + rate).",
    schema={
        "type": "object",
        "properties": {
            "rate": {"type": "number", "minimum": 0, "maximum": 1, "description": "VAT rate, e.g. 0.19"},
            "source": {"type": "string", "description": "Field with the net price (default net)."},
            "target": {"type": "string", "description": "Field for the gross price (default gross)."},
        },
        "additionalProperties": False,
    },
    apply=add_vat,
)
