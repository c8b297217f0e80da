# Per-address login throttling (issue 19, section 3): each failed login keeps the client's address.

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('clinic', '0005_idempotency'),
    ]

    operations = [
        migrations.AddField(
            model_name='loginfailure',
            name='address',
            field=models.CharField(blank=True, db_index=True, max_length=45),
        ),
    ]
