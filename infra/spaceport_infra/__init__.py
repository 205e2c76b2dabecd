"""Spaceport's AWS deployment: the CDK stack (:mod:`.stack`, configured by :mod:`.settings`)
and the tooling around ``chalice deploy`` (:mod:`.chalice_apps`)."""
