from recordbank.cli import app

app()
