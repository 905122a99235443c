# rule:[Drop bounces]
if anyof (header :is "auto-submitted" "auto-replied", address :localpart :is "from" "mailer-daemon")
{
	discard;
	stop;
}
