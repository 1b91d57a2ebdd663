"""The GraphQL root schema at /graphql/: the queries and mutations of pipelines, runs, gates and consumers, each
app's own schema module composed here. The root is the one place that may know every app.
"""

from __future__ import annotations

import graphene

from gates import schema as gates_schema
from pipelines import credential_schema, review_schema
from pipelines import schema as pipelines_schema
from runs import schema as runs_schema
from runs.consumers import schema as consumers_schema


class Query(pipelines_schema.Query, credential_schema.Query, review_schema.Query, runs_schema.Query, gates_schema.Query,
            consumers_schema.Query, graphene.ObjectType):
    pass


class Mutation(pipelines_schema.Mutation, credential_schema.Mutation, review_schema.Mutation, runs_schema.Mutation,
               gates_schema.Mutation, consumers_schema.Mutation, graphene.ObjectType):
    pass


schema = graphene.Schema(query=Query, mutation=Mutation)
