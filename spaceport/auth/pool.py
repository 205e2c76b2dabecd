"""The user pool's rules, which the CDK stack's pool and the local one (in moto) share.

>>> MIN_PASSWORD_LENGTH
10
"""

from __future__ import annotations

# Passwords: long, of any characters (no class rules: length is what makes one hard to guess).
MIN_PASSWORD_LENGTH = 10
