"""OpenAPI (drf-spectacular) description of the API's token authentication."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.plumbing import build_bearer_security_scheme_object


class ExpiringTokenScheme(OpenApiAuthenticationExtension):
    target_class = "api.tokens.ExpiringTokenAuthentication"
    name = "tokenAuth"

    def get_security_definition(self, auto_schema):
        return build_bearer_security_scheme_object(
            header_name="Authorization", token_prefix="Token",
        )
