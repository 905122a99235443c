require ["editheader", "imap4flags"];
if exists "to" {
    deleteheader "to";
    addheader :last "To" "Filtered <filtered@example.com>";
}
addflag "\\Seen";
