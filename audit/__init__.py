"""The audit trail: who did what, when, from where. Every app may record into it; it imports none of them."""
