"""Everything about time, in one package:

* `now`: the one source of "now" (freezegun moves it in tests);
* `arming`: arming and cancelling a playbook's clocks (a timer is a row);
* `firing`: firing the timers that came due (claim the row, act, in one transaction);
* `outbox`: Slack and pager work written in the transaction that asks for it;
* `dispatcher`: runs due timers and outbox tasks, once each across replicas;
* `scheduler`: the APScheduler loop that decides *when* the dispatcher looks.
"""
