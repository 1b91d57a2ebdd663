"""Custom operators: how a Python developer adds an operator at run time. [pure]

The Python form of the plugin's ``registerRuntime({type: 'OPERATOR', ...})``::

    from pipelines.custom import register_operator

    def add_vat(records, args, helpers):
        rate = args.get("rate", 0.19)
        return [{**r, "gross": round(r["net"] * (1 + rate), 2)} for r in records]

    register_operator(code="addVat", name="Add VAT", category="pricing",
                      description="gross = net * (1 + rate)",
                      schema={"type": "object", "properties": {"rate": {"type": "number"}}},
                      apply=add_vat)

or as a decorator, ``@custom_operator(code="addVat", ...)``. ``helpers`` is the operator's
:class:`~pipelines.operators.base.OperatorContext` (``warn``, ``checkpoint``, ``step_key``, ``http``), and
:mod:`pipelines.records` has the path helpers (``get_path``, ``set_path``).

Where plugins come from: a Django app's ``ready()``, a module named in ``settings.DATAHUB_PLUGIN_MODULES``,
or an installed package's entry point in the group ``datahub.plugins`` (see :mod:`pipelines.plugins`).

What is checked when it registers: the code is a non-empty identifier-like string and does not clash with
any existing operator (pass ``replace=True`` to replace one on purpose); the schema is a valid JSON schema
of an object; ``apply`` is callable with three arguments. Args are validated against the schema before a
run starts.

How it is called: with one record at a time (``[record]``), so that a raise fails that record alone (it
goes to the record-error list with the plugin's message, as it entered the step) and no record is ever
given to the operator twice to find out which one failed; per-record retry (``retryPerRecord``) calls it
again only for the failing records, as often as the policy allows. It may return no record (a filter)
or several (an expansion). An operator that needs to see the records together (a dedup, a total) passes
``needs_all_records=True``: it then gets every record of the step in one call, a raise fails the step,
and per-record retry is refused for its step.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable

from pipelines.operators.base import OperatorSpec, with_common_args
from pipelines.registry import RegistrationError
from pipelines.registry import operators as operator_registry

_CODE = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,99}$")


def register_operator(
    *,
    code: str,
    apply: Callable,
    name: str | None = None,
    description: str = "",
    category: str = "custom",
    schema: dict | None = None,
    replace: bool = False,
    needs_all_records: bool = False,
) -> Callable:
    """Register an operator ``apply(records, args, helpers) -> records``; returns ``apply``."""
    if not isinstance(code, str) or not _CODE.match(code):
        raise RegistrationError(
            f"operator code {code!r} must start with a letter and use letters, digits, '_', '-' or '.'"
        )
    if not callable(apply):
        raise RegistrationError(f"operator '{code}': apply must be callable")
    try:
        inspect.signature(apply).bind(None, None, None)
    except TypeError:
        raise RegistrationError(f"operator '{code}': apply must take (records, args, helpers)") from None
    except ValueError:  # builtins without a signature: let them through
        pass
    schema = schema if schema is not None else {"type": "object"}
    if not isinstance(schema, dict):
        raise RegistrationError(f"operator '{code}': schema must be a JSON schema object")
    operator_registry.register(
        code,
        OperatorSpec(apply=apply, needs_all_records=needs_all_records, pure=False, per_record_calls=True),
        name=name or code,
        category=category,
        description=description,
        schema=with_common_args(schema),
        replace=replace,
        builtin=False,
        shape="batch",
    )
    return apply


def custom_operator(**options) -> Callable[[Callable], Callable]:
    """Decorator form of :func:`register_operator`."""

    def register(apply: Callable) -> Callable:
        return register_operator(apply=apply, **options)

    return register
