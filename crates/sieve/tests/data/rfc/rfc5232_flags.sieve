require ["imap4flags", "fileinto", "variables"];
if size :over 1M {
    addflag "MyFlags" "Big";
    if header :is "From" "boss@example.com" {
        # MyFlags variable is set to "Big \Flagged" here
        addflag "MyFlags" "\\Flagged";
    }
    fileinto :flags "${MyFlags}" "INBOX.From Boss";
} else {
    setflag "\\Seen";
}
if hasflag :contains "MyVar" "Junk" {
    discard;
}
