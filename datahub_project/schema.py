"""(being written: the GraphQL root schema)"""
