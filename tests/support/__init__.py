"""The test harness: what the capability folders share, one module per concept, each name meaning one thing.

Fixtures (pytest finds them through ``tests/conftest.py``; the session's database fixtures live there):

============================  ======================  =================================================================
fixture / class               module                  what it is, and when to use it
============================  ======================  =================================================================
``harness`` / ``Harness``     ``harness.py``          both services (authority, store) on free real ports against the
                                                      test's database, with the steps every end-to-end test repeats
                                                      (``new_user``, ``enroll``, ``store_bundle``, ``store(...)``).
                                                      ``running_services(url, **settings)`` for other settings.
``world`` / ``EnrolledOrg``   ``enrolled_org.py``     an org ``acme`` enrolled on a ``harness``, vault ``prod``, its
                                                      owner's bundles: the start of most store, Vault-API and audit
                                                      tests. ``world_of(h)`` for any harness.
``client`` / ``authority_     ``authority_app.py``    the authority app alone, in process under aiohttp's test client
services(client)``                                    (``make_client``, ``config``): authority unit-level HTTP tests;
                                                      ``authority_services(client)`` is that app's services object.
``audited`` / ``Audited``     ``audited_store.py``    a store with a history to review, and the audit console over it.
``rw`` / ``RotationWorld``,   ``rotation.py``         managed rotation: both services, an org, and ``pg``, a PostgreSQL
``pg``                                                cluster of the module's own that checks passwords.
``DevWorld``                  ``dev_world.py``        one real ``cvault dev`` per test module (``yield from
                                                      make_dev_world(...)`` in a module fixture, ``w`` or ``dev``),
                                                      an operator logged in and a workload's credentials: CLI journeys.
``log_guard``                 ``log_guard.py``        session-wide: every log line is checked for credentials.
``roles``                     ``database_roles.py``   the deployment's least-privilege database roles, fresh names.
============================  ======================  =================================================================

Helpers without fixtures: ``audit_rows.py`` (a test's store audit events, ``FAIL_AT_COMMIT``), ``nodes.py`` (a second
store or authority node beside a harness), ``key_traffic.py`` (concurrent traffic during a rotation), ``tokenkit.py``
(token-core builders), ``cvault_command.py`` (the real ``cvault`` as a process), ``mailbox.py`` (an SMTP relay in
process), ``oidc_issuer.py`` (an OIDC issuer over TLS), ``bao.py`` (the real OpenBao binary), ``browser.py`` (headless
Chromium), ``serving.py`` (a trivial app on the real runner), ``deployment_journey.py`` and ``readme_journeys.py`` (the
documented journeys, step by step). ``tests/faults`` keeps its own support (``cluster.py``, ``services.py``, ...).
"""
