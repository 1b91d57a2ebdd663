"""(being written: the REST API)"""

urlpatterns: list = []
