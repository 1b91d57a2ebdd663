"""(being written: GraphQL)"""

urlpatterns: list = []
