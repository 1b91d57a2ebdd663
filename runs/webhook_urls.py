"""(being written: webhook triggers)"""

urlpatterns: list = []
