"""Every URL pattern of the project, read from the resolver (not from a list kept by hand)."""

from __future__ import annotations

from dataclasses import dataclass

from django.urls import URLPattern, URLResolver, get_resolver


@dataclass(frozen=True)
class Pattern:
    key: str  # "namespace:name", "+[format]" for DRF's format-suffix twin, or the route
    name: str | None  # "namespace:name" for reverse(), None when the pattern has no name
    route: str
    kwargs: tuple[str, ...]  # the URL's keyword arguments
    callback: object
    namespace: str  # "" outside any namespace

    @property
    def model_admin(self):
        return getattr(self.callback, "model_admin", None)


def _kwargs(pattern) -> tuple[str, ...]:
    regex = pattern.pattern.regex
    return tuple(regex.groupindex)


def all_patterns() -> list[Pattern]:
    out: list[Pattern] = []

    def walk(resolver: URLResolver, prefix: str, ns: str, kwargs: tuple[str, ...]):
        for p in resolver.url_patterns:
            if isinstance(p, URLResolver):
                sub_ns = ":".join(x for x in (ns, p.namespace) if x)
                walk(p, prefix + str(p.pattern), sub_ns, kwargs + _kwargs(p))
                continue
            assert isinstance(p, URLPattern)
            route = prefix + str(p.pattern)
            names = kwargs + _kwargs(p)
            name = f"{ns}:{p.name}" if ns and p.name else p.name
            key = route if name is None else name + ("[format]" if "format" in names else "")
            out.append(Pattern(key=key, name=name, route=route, kwargs=names,
                               callback=p.callback, namespace=ns))

    walk(get_resolver(), "/", "", ())
    return out
