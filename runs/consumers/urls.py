"""The Queues page: MESSAGE consumers (mounted at the root)."""

from django.urls import path

from runs.consumers import views

urlpatterns = [
    path("queues/", views.queue_list, name="queue-list"),
    path("queues/<int:pk>/", views.queue_detail, name="queue-detail"),
    path("queues/<int:pk>/start/", views.queue_start, name="queue-start"),
    path("queues/<int:pk>/stop/", views.queue_stop, name="queue-stop"),
]
