"""Token endpoints: ``POST /api/auth/token/`` (username and password -> ``{"token", "expiry"}``),
``DELETE /api/auth/token/`` (revokes the token the request carries), and the user's list of
tokens (``GET /api/auth/tokens/``, ``DELETE /api/auth/tokens/<id>/``). Token logic lives in
api.tokens; failed passwords count towards the django-axes lockout like the login page's."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import authenticate
from django.contrib.auth.signals import user_logged_in
from drf_spectacular.utils import OpenApiResponse, extend_schema
from knox.models import AuthToken
from rest_framework import serializers, status
from rest_framework.authentication import SessionAuthentication
from rest_framework.exceptions import (
    NotFound,
    PermissionDenied,
    UnsupportedMediaType,
    ValidationError,
)
from rest_framework.parsers import JSONParser
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from .tokens import (
    SHOWN_PREFIX,
    ExpiringTokenAuthentication,
    token_id,
    token_issue,
    token_revoke,
    token_revoke_by_id,
    tokens_of,
)

BAD_CREDENTIALS = "Unable to log in with provided credentials."


class TokenRequestSerializer(serializers.Serializer):
    username = serializers.CharField(max_length=150)
    password = serializers.CharField(max_length=4096, trim_whitespace=False,
                                     style={"input_type": "password"})


class TokenIssuedSerializer(serializers.Serializer):
    token = serializers.CharField(help_text="Send as `Authorization: Token <token>`. Shown once.")
    expiry = serializers.DateTimeField()


class TokenInfoSerializer(serializers.Serializer):
    id = serializers.SerializerMethodField(help_text="Use with DELETE /api/auth/tokens/<id>/.")
    prefix = serializers.SerializerMethodField(help_text="The first characters of the key.")
    created = serializers.DateTimeField()
    expiry = serializers.DateTimeField()
    current = serializers.SerializerMethodField(help_text="The token of this request.")

    def get_id(self, token: AuthToken) -> str:
        return token_id(token)

    def get_prefix(self, token: AuthToken) -> str:
        return token.token_key[:SHOWN_PREFIX]

    def get_current(self, token: AuthToken) -> bool:
        auth = self.context["request"].auth
        return isinstance(auth, AuthToken) and auth.digest == token.digest


def _origin_allowed(request) -> bool:
    """No Origin (a script), or one of the site's own: the host itself or one of
    DJANGO_CSRF_TRUSTED_ORIGINS. A page elsewhere must not spend a visitor's address's login
    failures (django-axes counts them per address)."""
    origin = request.META.get("HTTP_ORIGIN")
    if origin is None:
        return True
    own = f"{request.scheme}://{request.get_host()}"
    return origin in {own, *settings.CSRF_TRUSTED_ORIGINS}


class TokenView(APIView):
    authentication_classes = [ExpiringTokenAuthentication, SessionAuthentication]
    # JSON only: a cross-site HTML form cannot send application/json without a CORS
    # preflight (which this site never grants), so a foreign page cannot post here.
    parser_classes = [JSONParser]

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        if request.method == "POST" and not _origin_allowed(request._request):
            raise PermissionDenied("Requests from another site's pages cannot ask for a token.")
        # Said here, not left to the parser: a middleware may already have read a form body
        # (relabel_app.text_input), after which DRF hands the view the parsed form.
        if request.method == "POST" and \
                request.content_type.split(";")[0].strip().lower() != "application/json":
            raise UnsupportedMediaType(request.content_type)

    def get_permissions(self):
        if self.request.method == "POST":
            return [AllowAny()]
        return [IsAuthenticated()]

    def get_authenticators(self):
        # Asking for a token needs only the password: a stale token in the header of a
        # script that asks for a new one is not an error. A browser session is still
        # looked at, so that its CSRF check applies.
        if getattr(getattr(self, "request", None), "method", None) == "POST":
            return [SessionAuthentication()]
        return super().get_authenticators()

    @extend_schema(
        summary="Get an API token", request=TokenRequestSerializer,
        responses={200: TokenIssuedSerializer,
                   400: OpenApiResponse(description="Wrong username or password."),
                   403: OpenApiResponse(description="Sent from another site's page (Origin)."),
                   415: OpenApiResponse(description="The body is not application/json."),
                   429: OpenApiResponse(description="Too many failed logins: locked out.")},
        auth=[],
    )
    def post(self, request: Request) -> Response:
        body = TokenRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        # The Django request, so that django-axes counts the failure and flags a lockout
        # (its middleware then answers 429).
        user = authenticate(request=request._request, **body.validated_data)
        if user is None:
            raise ValidationError({"non_field_errors": [BAD_CREDENTIALS]})
        instance, key = token_issue(user)
        user_logged_in.send(sender=user.__class__, request=request._request, user=user)
        return Response(TokenIssuedSerializer({"token": key, "expiry": instance.expiry}).data)

    @extend_schema(
        summary="Revoke the token this request carries", request=None,
        responses={204: OpenApiResponse(description="Revoked."),
                   400: OpenApiResponse(description="The request carries no token.")},
    )
    def delete(self, request: Request) -> Response:
        if not isinstance(request.auth, AuthToken):
            return Response(
                {"detail": "Send the token to revoke: Authorization: Token <key>. "
                           "(DELETE /api/auth/tokens/<id>/ revokes one of your tokens by id.)"},
                status=status.HTTP_400_BAD_REQUEST,
            )
        token_revoke(request.auth)
        return Response(status=status.HTTP_204_NO_CONTENT)


class TokenListView(APIView):
    authentication_classes = [ExpiringTokenAuthentication, SessionAuthentication]
    permission_classes = [IsAuthenticated]

    @extend_schema(summary="Your live API tokens", responses=TokenInfoSerializer(many=True))
    def get(self, request: Request) -> Response:
        tokens = tokens_of(request.user)
        return Response(TokenInfoSerializer(tokens, many=True, context={"request": request}).data)


class TokenDetailView(APIView):
    authentication_classes = [ExpiringTokenAuthentication, SessionAuthentication]
    permission_classes = [IsAuthenticated]

    @extend_schema(summary="Revoke one of your API tokens", request=None,
                   responses={204: OpenApiResponse(description="Revoked."),
                              404: OpenApiResponse(description="You have no such token.")})
    def delete(self, request: Request, token_id: str) -> Response:
        if not token_revoke_by_id(request.user, token_id):
            raise NotFound("You have no such token.")
        return Response(status=status.HTTP_204_NO_CONTENT)


