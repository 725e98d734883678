"""Control-plane storage: tables, repositories, migrations and the secret vault."""
