"""graphqlMutation throughput against a local graphene server: single vs batch mode, and a plain loop.

    .venv/bin/python bench/bench_graphql_loader.py [--records 2000] [--batch 50] [--rounds 3]

One graphene server on 127.0.0.1 (stdlib ThreadingHTTPServer) executes ``createProduct(input:)`` and
returns ``{id sku}``. Three clients send the same records to it, one thread each:

* a hand-written loop: one ``requests.Session`` POST of ``{query, variables}`` per record, ``.json()``
  on the answer, nothing else (no address guard, no error matching): the floor for one request per record;
* the loader in ``batchMode: single`` (one request per record, through the guarded HTTP client, with
  the errors array checked and the id written back into a copy of the record);
* the loader in ``batchMode: batch`` (``--batch`` aliased mutations per request).

The figure is records per second, the median over ``--rounds`` rounds, with the share of the time the
server was busy. Server time is included on every side (it is the same server), so the batch/single
ratio shows what batching saves per round trip, and single/loop what the loader's own work costs per
request.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import graphene  # noqa: E402
import requests  # noqa: E402

from pipelines.adapters.base import AdapterContext  # noqa: E402
from pipelines.adapters.graphql_mutation import GraphqlMutationLoader  # noqa: E402
from pipelines.http import HttpClient, HttpPolicy  # noqa: E402

MUTATION = "mutation Create($input: ProductInput!) { createProduct(input: $input) { id sku } }"


class ProductInput(graphene.InputObjectType):
    sku = graphene.String(required=True)
    price = graphene.Float()


class Product(graphene.ObjectType):
    id = graphene.ID()
    sku = graphene.String()


class Mutation(graphene.ObjectType):
    create_product = graphene.Field(Product, input=ProductInput(required=True))

    def resolve_create_product(root, info, input):
        return Product(id=f"P-{input.sku}", sku=input.sku)


class Query(graphene.ObjectType):
    ok = graphene.Boolean()


SCHEMA = graphene.Schema(query=Query, mutation=Mutation)
# Time the server spent parsing, validating and executing, so the client's own share can be told apart.
SERVER_SECONDS = [0.0]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as a real server would

    def setup(self):
        super().setup()
        # Headers and body go out in two writes: without this, Nagle + delayed ACK add 40 ms per response.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def do_POST(self):
        started = time.perf_counter()
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        result = SCHEMA.execute(body["query"], variables=body.get("variables"))
        data = json.dumps(result.formatted).encode()
        SERVER_SECONDS[0] += time.perf_counter() - started  # one client thread: no concurrent handlers
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


def plain_loop(url: str, records: list[dict]) -> int:
    session = requests.Session()
    ok = 0
    for record in records:
        answer = session.post(url, json={"query": MUTATION, "variables": {"input": record}}, timeout=30).json()
        ok += answer["data"]["createProduct"] is not None
    return ok


def with_loader(url: str, records: list[dict], **config) -> int:
    ctx = AdapterContext(http=HttpClient(HttpPolicy(allow=("127.0.0.1",))))
    writer = GraphqlMutationLoader({"endpoint": url, "mutation": MUTATION, "resultMapping": {"id": "id"},
                                    **config}, ctx)
    result = writer.write(records)
    assert not result.failed, result.failed[:3]
    return result.written


def rate(fn, records, rounds) -> tuple[float, float]:
    """Records per second and the share of the wall time the server was busy (medians)."""
    figures, shares = [], []
    for _ in range(rounds):
        SERVER_SECONDS[0] = 0.0
        started = time.perf_counter()
        done = fn(records)
        elapsed = time.perf_counter() - started
        assert done == len(records), done
        figures.append(len(records) / elapsed)
        shares.append(SERVER_SECONDS[0] / elapsed)
    return statistics.median(figures), statistics.median(shares)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}/graphql"
    records = [{"sku": f"SKU-{i}", "price": i / 10} for i in range(args.records)]
    try:
        with_loader(url, records[:10])  # warm up (imports, connection pool)
        loop = rate(lambda r: plain_loop(url, r), records, args.rounds)
        single = rate(lambda r: with_loader(url, r, batchMode="single"), records, args.rounds)
        batch = rate(lambda r: with_loader(url, r, batchMode="batch", maxBatchSize=args.batch), records,
                     args.rounds)
    finally:
        server.shutdown()

    print(f"{args.records} records, median of {args.rounds} rounds, one client thread, graphene server on 127.0.0.1")
    rows = [
        ("plain requests loop (1 req/record)", loop, ""),
        ("graphqlMutation single (1 req/record)", single, f"{single[0] / loop[0]:.2f}x the loop"),
        (f"graphqlMutation batch ({args.batch}/request)", batch,
         f"{batch[0] / single[0]:.1f}x single, {batch[0] / loop[0]:.1f}x the loop"),
    ]
    for label, (per_second, busy), ratio in rows:
        print(f"  {label:<40} {per_second:7.0f} records/s   server busy {busy:4.0%}   {ratio}".rstrip())

if __name__ == "__main__":
    main()
