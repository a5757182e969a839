FLASK_APP=srs.py
