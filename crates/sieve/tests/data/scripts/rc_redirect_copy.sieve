require ["copy"];
# rule:[Forward everything]
if true
{
	redirect :copy "backup@example.net";
}
