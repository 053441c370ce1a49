"""The enterprise portal (`/portal`), its OpenID Connect login and the consent
page of the authorisation code flow (`/oauth/authorize`).

- `oidc.py`: the gateway as a relying party of the enterprises' provider;
- `sessions.py`: pending logins and sessions (hashes only; CSRF derived);
- `login.py`: /portal/login, its callback, /portal/logout;
- `authorize.py`: the consent page and the decision (grants.service.CodeFlow);
- `pages.py`: the landing page and the consents page (revocation);
- `history.py`: the access history (access_log's service, paged by cursor);
- `selfreport.py`: my report (`self_query`: free, no gate, audited once a view),
  the printable page and the signed JSON;
- `disputes.py`: disputes raised on my report's records, followed;
- `repair_pages.py`: credit repair (the repairs service): penalties and their
  eligibility, the application with evidence uploads and the commitment, the review;
- `record_views.py`, `repair_views.py`: those pages' HTML;
- `web.py`, `views.py`, `i18n.py`: what the pages share; `repository.py`: the SQL.

For another portal page, take the session and the layout from `web.py`:

    from gateway.portal.web import LangQuery, PortalSessionDep, page
    from gateway.webpages import lang_of

    @router.get("/portal/disputes")
    async def disputes(session: PortalSessionDep, lang: LangQuery = "zh") -> Response:
        main = "<h1>…</h1>"  # escaped HTML (views.esc)
        return page(lang_of(lang), session, "异议申请", main, "/portal/disputes")

`PortalSessionDep` is the live `PortalSession` (its `principal`, a
`PortalPrincipal`: the keyed hash of the person's subject, `credit_code`,
`role`; its `csrf` token for forms); without one the person is redirected
(303) to the login, which comes back to the page. `page` wraps `main` in the
portal's layout (nav, who is acting, language switch, logout) with the
security headers (CSP without inline script, frame-ancestors 'none'). Forms:
`gateway.webpages.read_form` and `csrf_matches(session.csrf, form["csrf"])`;
refusals: `web.error_page(lang, problem)`.
"""
