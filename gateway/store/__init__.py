"""The credit store: tables, migrations and the SQL that reads and writes them."""
