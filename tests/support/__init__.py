"""Shared test helpers."""

#: The eight key areas of the 2018 Jintang work plan (the seed).
EIGHT_AREAS = frozenset(
    {"land", "relocation", "housing", "dilapidated", "poverty", "municipal", "trading", "education"}
)
