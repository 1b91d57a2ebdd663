"""(being written: pages)"""

urlpatterns: list = []
