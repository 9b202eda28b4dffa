"""Report formats beyond report.py's human and JSON renderers (JUnit XML, GitHub annotations, verbose detail).

The names are listed here, without importing anything heavy, so that the CLI can offer them while
starting fast; report.REPORTERS maps each name to its renderer.
"""

FORMAT_NAMES = ("human", "json", "junit", "github")
