"""From an accepted event to the delivery queues of the integrations that may receive it."""
