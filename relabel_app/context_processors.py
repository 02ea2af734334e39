from .roles import user_is_curator


def roles(request) -> dict:
    """`is_curator` for the navigation; evaluated lazily, one query only when used."""
    from django.utils.functional import SimpleLazyObject

    return {"nav_is_curator": SimpleLazyObject(lambda: user_is_curator(request.user))}
