#!/usr/bin/perl
# Perl CGI: the request method and the query string's name=value pairs, one a line.
use strict;
use warnings;
print "Status: 200 OK\r\n";
print "Content-Type: text/plain; charset=utf-8\r\n\r\n";
print "Hello from Perl\n";
print "REQUEST_METHOD=", ($ENV{REQUEST_METHOD} // ''), "\n";
for my $pair (split /&/, ($ENV{QUERY_STRING} // '')) {
    my ($name, $value) = split /=/, $pair, 2;
    $value //= '';
    $value =~ tr/+/ /;
    $value =~ s/%([0-9A-Fa-f]{2})/chr(hex($1))/ge;
    print "$name: $value\n";
}
