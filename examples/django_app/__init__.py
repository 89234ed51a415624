"""The updater-stats endpoint in a Django project: settings.py, urls.py and views.py.

Run:      django-admin runserver --pythonpath examples --settings django_app.settings
          (then POST to http://127.0.0.1:8000/stats)
Install:  pip install "updater-stats[frameworks]"  (Django comes with the frameworks extra)
Storage:  UPDATER_STATS_STORAGE=sqlite:////var/lib/stats.sqlite3, or call
          updater_stats.configure(...) at start-up; the default is ./updater_stats.sqlite3.
"""
