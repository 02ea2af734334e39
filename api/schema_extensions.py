"""OpenAPI (drf-spectacular): the API's token authentication, and list filters."""

from drf_spectacular import openapi
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.plumbing import build_bearer_security_scheme_object


class ExpiringTokenScheme(OpenApiAuthenticationExtension):
    target_class = "api.tokens.ExpiringTokenAuthentication"
    name = "tokenAuth"

    def get_security_definition(self, auto_schema):
        return build_bearer_security_scheme_object(
            header_name="Authorization", token_prefix="Token",
        )


class AutoSchema(openapi.AutoSchema):
    """drf-spectacular's AutoSchema, documenting a list's query parameters from the view's
    `filter_serializer` (api.views.FilteredListMixin): the serializer that validates them
    is the one fact, not repeated in each view's schema decorator."""

    def get_override_parameters(self):
        params = super().get_override_parameters()
        filters = getattr(self.view, "filter_serializer", None)
        if filters is not None and getattr(self.view, "action", None) == "list":
            params = [filters, *params]
        return params
