// What a Node webmail does through imapflow, against the server named in the JSON argument
// ({host, port, ca, user, password}): implicit TLS with the certificate verified, COMPRESS
// (imapflow negotiates it), the folder list with special-use, INBOX opened, searched and
// fetched, flags stored with CONDSTORE, a move, an append, and IDLE until a new message
// arrives (it prints DELIVER and waits). Ends with `RESULT {json}`; any error exits 1.
'use strict';

const fs = require('fs');
const { ImapFlow } = require('imapflow');

const config = JSON.parse(process.argv[2]);
// Never hang: a stuck command fails the run.
setTimeout(() => {
    console.error('timed out');
    process.exit(2);
}, 120000).unref();

function fail(message) {
    throw new Error(message);
}

async function main() {
    const client = new ImapFlow({
        host: config.host,
        port: config.port,
        secure: true,
        tls: { ca: [fs.readFileSync(config.ca)] },
        auth: { user: config.user, pass: config.password },
        logger: false,
        emitLogs: false
    });
    client.on('error', err => {
        console.error('connection error', err);
        process.exit(1);
    });
    await client.connect();
    const result = {};
    result.compressed = !!client._deflate;
    result.enabled = [...client.enabled].sort();

    result.special_use = {};
    for (const folder of await client.list()) {
        if (folder.specialUse) {
            result.special_use[folder.path] = folder.specialUse;
        }
    }

    const inbox = await client.mailboxOpen('INBOX');
    result.inbox_exists = inbox.exists;
    const modseqBefore = BigInt(inbox.highestModseq || 0);

    const messages = await client.fetchAll(
        '1:*',
        { uid: true, envelope: true, bodyStructure: true, flags: true, threadId: true },
        {}
    );
    result.inbox_message_ids = {};
    result.envelope_subjects = [];
    result.envelope_from = [];
    result.envelope_in_reply_to = [];
    result.body_types = [];
    result.email_ids = [];
    result.thread_ids = [];
    for (const message of messages) {
        result.inbox_message_ids[message.uid] = message.envelope.messageId;
        result.envelope_subjects.push(message.envelope.subject);
        result.envelope_from.push(message.envelope.from[0].address);
        result.envelope_in_reply_to.push(message.envelope.inReplyTo || null);
        result.body_types.push(message.bodyStructure.type);
        result.email_ids.push(message.emailId || null);
        result.thread_ids.push(message.threadId || null);
    }

    result.search_koeln = await client.search({ subject: 'Köln' }, { uid: true });
    result.search_from_carol = await client.search({ from: 'carol@client.test' }, { uid: true });

    // CONDSTORE: flag the first message with its current MODSEQ, then try to change it again
    // with the MODSEQ from before that store.
    const first = messages[0];
    const firstModseq = first.modseq;
    if (!firstModseq) {
        fail('FETCH gave no MODSEQ although CONDSTORE is enabled');
    }
    result.store_current = await client.messageFlagsAdd(String(first.uid), ['\\Flagged'], {
        uid: true,
        unchangedSince: firstModseq
    });
    result.store_stale = await client.messageFlagsAdd(String(first.uid), ['\\Answered'], {
        uid: true,
        unchangedSince: firstModseq
    });
    const after = await client.fetchOne(String(first.uid), { uid: true, flags: true }, { uid: true });
    result.flags_after_stores = [...after.flags].sort();
    result.modseq_before = Number(firstModseq);
    result.modseq_after = Number(after.modseq);
    if (BigInt(after.modseq) <= modseqBefore) {
        fail(`MODSEQ ${after.modseq} did not rise above the mailbox's ${modseqBefore}`);
    }

    const lunch = messages.find(message => message.envelope.subject === 'Lunch');
    const moved = await client.messageMove(String(lunch.uid), 'Archive', { uid: true });
    if (!moved || !moved.uidMap || moved.uidMap.size !== 1) {
        fail(`MOVE gave no COPYUID: ${JSON.stringify(moved)}`);
    }
    result.inbox_after_move = client.mailbox.exists;

    const draft =
        'From: Webmail User <' + config.user + '>\r\n' +
        'To: someone@client.test\r\n' +
        'Subject: Draft from the webmail\r\n' +
        'Message-ID: <draft@webmail.test>\r\n' +
        '\r\n' +
        'Not sent yet.\r\n';
    const appended = await client.append('Drafts', draft, ['\\Draft', '\\Seen']);
    if (!appended || !appended.uid) {
        fail(`APPEND gave no APPENDUID: ${JSON.stringify(appended)}`);
    }

    const quota = await client.getQuota('INBOX');
    result.quota_storage_limit = quota && quota.storage ? quota.storage.limit : null;

    // IDLE in INBOX until the new message is announced.
    const arrived = new Promise(resolve => {
        client.on('exists', data => {
            if (data.path === 'INBOX' && data.count > data.prevCount) {
                resolve(data.count);
            }
        });
    });
    const idling = client.idle();
    console.log('DELIVER');
    result.idle_exists = await arrived;
    idling.catch(() => {});
    const late = await client.fetchOne('*', { envelope: true });
    result.late_subject = late.envelope.subject;

    await client.mailboxOpen('Archive');
    const archived = await client.fetchAll('1:*', { envelope: true });
    result.archive_subjects = archived.map(message => message.envelope.subject);

    await client.mailboxOpen('Drafts');
    const drafts = await client.fetchAll('1:*', { envelope: true, flags: true });
    result.draft = drafts.length === 1
        ? { subject: drafts[0].envelope.subject, flags: [...drafts[0].flags].sort() }
        : { count: drafts.length };

    await client.logout();
    console.log('RESULT ' + JSON.stringify(result));
}

main().catch(err => {
    console.error(err && err.stack ? err.stack : err);
    if (err && err.response) {
        console.error('server said:', err.response);
    }
    process.exit(1);
});
