"""What the tests and the load tests share: throw-away PostgreSQL and Redis servers
(services), record builders (builders), registered clients with keys (clients) and
an app served over HTTP (live). Not part of the installed package."""
