"""Tests of the scaled stack (deploy/)."""
