"""Assessment: withdrawal scales, dependence and risk screens, crisis help, and the mirror analysis."""
