"""A user's permissions in one query instead of Django's two (their own, then their groups').

Every page and API request of a logged-in user who is not a superuser asks ``has_perm`` at least once, and
``django.contrib.auth.backends.ModelBackend`` answers the first question with two queries: the user's own
permissions, then their groups'. Under load each query is a round trip that every request waits for
(bench/bench_load.py, bench/README.md "Load").

:class:`OneQueryPermissions` stands before ``ModelBackend`` in ``AUTHENTICATION_BACKENDS``. It answers no
question itself (``has_perm`` returns False, which tells Django to ask the next backend): it only fills the
two per-request caches that ``ModelBackend`` keeps on the user object (``_user_perm_cache`` and
``_group_perm_cache``) from one query, so ``ModelBackend`` then answers from them without querying.
``ModelBackend`` stays the backend that logs people in and that sessions name, so no session is logged
out by this, and what it answers is unchanged: the same two sets, read in one statement. Nothing is kept
beyond the request (the caches live on that request's user object), so a permission given or taken away
counts from the next request on, in every worker process.
"""

from __future__ import annotations

from django.contrib.auth.models import Group, Permission
from django.db.models import Exists, OuterRef, Q

USER_CACHE = "_user_perm_cache"
GROUP_CACHE = "_group_perm_cache"


def prime(user_obj) -> None:
    """Fill ModelBackend's caches of ``user_obj``'s own and group permissions with one query (once)."""
    if (not user_obj.is_active or user_obj.is_anonymous or user_obj.is_superuser
            or (hasattr(user_obj, USER_CACHE) and hasattr(user_obj, GROUP_CACHE))):
        return  # superusers: ModelBackend's own rule (every permission); inactive or anonymous: none
    own = Exists(user_obj.user_permissions.through.objects.filter(permission=OuterRef("pk"), user=user_obj.pk))
    grouped = Exists(Group.permissions.through.objects.filter(permission=OuterRef("pk"),
                                                              group__user=user_obj.pk))
    rows = (Permission.objects.annotate(own=own, grouped=grouped).filter(Q(own=True) | Q(grouped=True))
            .values_list("content_type__app_label", "codename", "own", "grouped").order_by())
    mine, theirs = set(), set()
    for app_label, codename, is_own, is_grouped in rows:
        name = f"{app_label}.{codename}"
        if is_own:
            mine.add(name)
        if is_grouped:
            theirs.add(name)
    setattr(user_obj, USER_CACHE, mine)
    setattr(user_obj, GROUP_CACHE, theirs)


class OneQueryPermissions:
    """Fills ModelBackend's permission caches in one query; answers nothing itself (see the module).

    Deliberately not a ``BaseBackend``: ``authenticate`` accepts no one and there is no ``get_user``, so
    Django never logs anyone in through it (``login()`` and the test client's ``force_login`` pick the first
    backend that has ``get_user``)."""

    def authenticate(self, request, **credentials) -> None:
        return None

    def has_perm(self, user_obj, perm, obj=None) -> bool:
        if obj is None:
            prime(user_obj)
        return False

    def has_module_perms(self, user_obj, app_label) -> bool:
        prime(user_obj)
        return False

    def get_all_permissions(self, user_obj, obj=None) -> set:
        if obj is None:
            prime(user_obj)
        return set()
