"""Booking writes a usage record without waiting for its ledger entry (docs/performance.md,
"Booking throughput"): the record's ledger_entry column goes, because the entry names its
request in its unique reference ("usage:<request id>") and that is how the record finds it
now. Before the column goes, the migration checks that every link it held says exactly what
the reference says, so dropping it loses nothing; it refuses to run otherwise.

Ledger entries' author index keeps only entries that have one: usage charges, nearly every
entry, have none, and each cost an index entry.
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


def check_links_match_references(apps, schema_editor):
    UsageRecord = apps.get_model("billing", "UsageRecord")
    LedgerEntry = apps.get_model("billing", "LedgerEntry")
    records = schema_editor.quote_name(UsageRecord._meta.db_table)
    entries = schema_editor.quote_name(LedgerEntry._meta.db_table)
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(f"SELECT r.request_id FROM {records} r JOIN {entries} e ON e.id = r.ledger_entry_id "
                       "WHERE e.reference <> 'usage:' || r.request_id LIMIT 5")
        mismatched = [row[0] for row in cursor.fetchall()]
    if mismatched:
        raise RuntimeError(f"usage records linked to a ledger entry whose reference names another request "
                           f"(e.g. {mismatched}): fix them before this migration drops the link")


def restore_links(apps, schema_editor):
    """Going back: the column is made again, and refilled from the references."""
    UsageRecord = apps.get_model("billing", "UsageRecord")
    LedgerEntry = apps.get_model("billing", "LedgerEntry")
    records = schema_editor.quote_name(UsageRecord._meta.db_table)
    entries = schema_editor.quote_name(LedgerEntry._meta.db_table)
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(f"UPDATE {records} SET ledger_entry_id = e.id FROM {entries} e "
                       f"WHERE e.reference = 'usage:' || {records}.request_id")


class Migration(migrations.Migration):

    dependencies = [
        ('billing', '0010_usage_status_abandoned'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RunPython(check_links_match_references, restore_links, elidable=True),
        migrations.RemoveField(
            model_name='usagerecord',
            name='ledger_entry',
        ),
        migrations.AddIndex(
            model_name='ledgerentry',
            index=models.Index(condition=models.Q(('created_by__isnull', False)), fields=['created_by'],
                               name='ledger_created_by'),
        ),
        migrations.AlterField(
            model_name='ledgerentry',
            name='created_by',
            field=models.ForeignKey(blank=True, db_index=False, null=True,
                                    on_delete=django.db.models.deletion.SET_NULL, to=settings.AUTH_USER_MODEL),
        ),
    ]
