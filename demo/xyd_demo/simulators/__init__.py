"""Platform simulators: each speaks its platform's spec, for tests and the demo.

A simulator given `borrowers` ((credit code, name) pairs, e.g. the demo seed's
enterprises) lends to them instead of to companies it makes up, so its
stream names enterprises the credit store knows.
"""

Borrowers = tuple[tuple[str, str], ...]


def pick(borrowers: Borrowers, number: int) -> tuple[str, str]:
    """The borrower of loan `number`: consecutive loans go to consecutive enterprises,
    so a stream of n loans names min(n, len) of them."""
    return borrowers[number % len(borrowers)]
