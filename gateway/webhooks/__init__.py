"""Banks are told: signed events (`consent.revoked`, `consent.expired`,
`enterprise.changed`) POSTed to a bank client's webhook through the outbox."""
