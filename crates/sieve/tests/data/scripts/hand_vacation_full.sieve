require ["vacation","vacation-seconds","variables"];
if header :matches "subject" "*"
{
	set "subj" "${1}";
}
vacation :seconds 172800 :subject "Re: ${subj}" :handle "away-2021" :addresses ["user@example.com", "u.ser@example.com"] text:
I am out of the office.
..Back on Monday.
.
;
