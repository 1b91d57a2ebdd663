"""(being written: health and metrics)"""

urlpatterns: list = []
