"""Who may do what on the review screens. Roles are the groups of relabel_app.roles:
a reviewer reviews; a curator (or admin, or superuser) also sees every reviewer's decisions,
adjudicates and manages datasets. A reviewer never sees another reviewer's decisions
before deciding (no anchoring)."""

from __future__ import annotations

from relabel_app.roles import (  # noqa: F401  (the review app's names for the shared checks)
    curator_required,
    reviewer_required,
    user_can_review,
    user_is_curator,
    user_roles,
)
