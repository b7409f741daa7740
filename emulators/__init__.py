"""Local stand-ins for the CRM targets: the demo's target and a test double (standard library only)."""
