"""Serving the model on the web: the Gradio event functions and everything about files, sheets and
memory that only the app needs. The model core (model/*.py) never imports this package or gradio."""
