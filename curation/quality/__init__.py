"""Quality studies (issue 19): a frozen, seeded random sample of (clip, class) questions
drawn from one or more label sources, answered blind by experts, and a report that turns
the answers into estimates with confidence intervals.

Modules: ``models`` (tables), ``sampling`` (creating a study in one statement per part),
``answers`` (recording answers, also as ordinary decisions), ``stats`` (pure estimators, no
Django), ``report`` (selectors that feed ``stats``), ``views``, ``csv``."""
