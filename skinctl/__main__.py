from skinctl.cli import app

app(prog_name="skinctl")
