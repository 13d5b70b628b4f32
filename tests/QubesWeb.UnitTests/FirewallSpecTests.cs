// A qube's firewall rules are checked where they are made, with a sentence that says what to write, and become
// libvirt's filter XML (anti-spoofing first, the rules in order, the policy last) through an XML API.
using System.Xml.Linq;
using QubesWeb.Components.Pages.Qubes;
using QubesWeb.Data.Qubes;
using QubesWeb.Hypervisor.Networks;

namespace QubesWeb.UnitTests;

public sealed class FirewallSpecTests
{
    [Theory]
    [InlineData("example.com", "Host names cannot be used")]
    [InlineData("10.1", "is not an IPv4 address")]
    [InlineData("0x0a000001", "is not an IPv4 address")]
    [InlineData("256.1.1.1", "is not an IPv4 address")]
    [InlineData("fe80::1", "is not an IPv4 address")]
    [InlineData("10.0.0.0/33", "has no valid prefix")]
    [InlineData("10.0.0.0/x", "has no valid prefix")]
    [InlineData("10.0.0.1/8", "the network is 10.0.0.0/8")]
    [InlineData("10.0.0.1'/><all/>", "has no valid prefix")]
    [InlineData("10.0.0.1' x='", "is not an IPv4 address")]
    public void A_destination_that_is_not_an_ipv4_address_or_network_is_refused_with_what_to_write(string destination, string said)
    {
        var e = Assert.Throws<ArgumentException>(() => new FirewallRuleSpec(FirewallAction.Drop, destination));
        Assert.Contains(said, e.Message);
    }

    [Fact]
    public void A_destination_is_kept_in_one_form_an_address_alone_or_a_network_with_its_prefix()
    {
        Assert.Equal("192.168.1.10", new FirewallRuleSpec(FirewallAction.Accept, "192.168.1.10").Destination);
        Assert.Equal("192.168.1.10", new FirewallRuleSpec(FirewallAction.Accept, "192.168.1.10/32").Destination);
        Assert.Equal("192.168.0.0/16", new FirewallRuleSpec(FirewallAction.Accept, "192.168.0.0/16").Destination);
        Assert.Null(new FirewallRuleSpec(FirewallAction.Accept, "").Destination);
    }

    [Fact]
    public void Ports_and_icmp_types_belong_to_their_protocols_and_their_ranges()
    {
        Assert.Contains("choose tcp or udp", Assert.Throws<ArgumentException>(() => new FirewallRuleSpec(FirewallAction.Accept, null, FirewallProtocol.Any, 80)).Message);
        Assert.Contains("choose icmp", Assert.Throws<ArgumentException>(() => new FirewallRuleSpec(FirewallAction.Accept, null, FirewallProtocol.Tcp, icmpType: 8)).Message);
        Assert.Contains("1 to 65535", Assert.Throws<ArgumentException>(() => new FirewallRuleSpec(FirewallAction.Accept, null, FirewallProtocol.Tcp, 0)).Message);
        Assert.Contains("1 to 65535", Assert.Throws<ArgumentException>(() => new FirewallRuleSpec(FirewallAction.Accept, null, FirewallProtocol.Udp, 1, 70000)).Message);
        Assert.Contains("runs backwards", Assert.Throws<ArgumentException>(() => new FirewallRuleSpec(FirewallAction.Accept, null, FirewallProtocol.Tcp, 443, 80)).Message);
        Assert.Contains("0 to 255", Assert.Throws<ArgumentException>(() => new FirewallRuleSpec(FirewallAction.Accept, null, FirewallProtocol.Icmp, icmpType: 256)).Message);
        var one = new FirewallRuleSpec(FirewallAction.Accept, null, FirewallProtocol.Tcp, 443);
        Assert.Equal((443, 443), (one.PortStart, one.PortEnd));
        Assert.Equal("443", one.Ports);
        Assert.Equal("8000-8080", new FirewallRuleSpec(FirewallAction.Accept, null, FirewallProtocol.Tcp, 8000, 8080).Ports);
    }

    [Theory]
    [InlineData("443", 443, 443)]
    [InlineData(" 8000 - 8080 ", 8000, 8080)]
    [InlineData("", null, null)]
    public void Ports_are_read_as_one_port_or_a_range(string text, int? start, int? end) =>
        Assert.Equal((start, end), FirewallRuleSpec.ParsePorts(text));

    [Theory]
    [InlineData("http")]
    [InlineData("80,443")]
    [InlineData("-5")]
    [InlineData("1-2-3")]
    public void Ports_that_are_not_a_port_or_a_range_are_refused(string text) =>
        Assert.Contains("write one port (443) or a range (8000-8080)", Assert.Throws<ArgumentException>(() => FirewallRuleSpec.ParsePorts(text)).Message);

    [Theory]
    [InlineData("sys-net/../x")]
    [InlineData("1abc")]
    [InlineData("a</filter>")]
    public void A_firewall_is_only_for_a_qube_name(string qube) =>
        Assert.Contains("is not a qube name", Assert.Throws<ArgumentException>(() => new FirewallSpec(qube, FirewallAction.Accept, [])).Message);

    [Fact]
    public void The_filter_holds_anti_spoofing_then_the_rules_in_order_then_the_policy()
    {
        var firewall = new FirewallSpec("work", FirewallAction.Drop,
        [
            new FirewallRuleSpec(FirewallAction.Accept, "10.139.1.0/30", FirewallProtocol.Udp, 53),
            new FirewallRuleSpec(FirewallAction.Drop, "192.168.1.10", FirewallProtocol.Tcp, 22),
            new FirewallRuleSpec(FirewallAction.Accept, null, FirewallProtocol.Tcp, 8000, 8080),
            new FirewallRuleSpec(FirewallAction.Accept, null, FirewallProtocol.Icmp, icmpType: 8),
        ]);
        var filter = XElement.Parse(NetworkXml.Firewall(firewall));

        Assert.Equal("qw-fw-work", filter.Attribute("name")!.Value);
        Assert.Equal("root", filter.Attribute("chain")!.Value);
        Assert.Equal("clean-traffic", filter.Elements().First().Attribute("filter")!.Value);
        var rules = filter.Elements("rule").ToList();
        Assert.Equal(["accept out udp dstipaddr=10.139.1.0 dstipmask=30 dstportstart=53", "drop out tcp dstipaddr=192.168.1.10 dstportstart=22",
                      "accept out tcp dstportstart=8000 dstportend=8080", "accept out icmp type=8", "drop out all"],
            rules.Select(r => $"{r.Attribute("action")!.Value} {r.Attribute("direction")!.Value} " +
                              string.Join(" ", new[] { r.Elements().Single().Name.LocalName }.Concat(r.Elements().Single().Attributes().Select(a => $"{a.Name}={a.Value}")))));
        // Tried in the order given, the policy after every rule.
        var priorities = rules.Select(r => int.Parse(r.Attribute("priority")!.Value)).ToList();
        Assert.Equal(priorities.Order(), priorities);
        Assert.Equal(priorities.Count, priorities.Distinct().Count());
    }

    [Fact]
    public void An_open_firewall_adds_no_drop_of_its_own_and_the_fingerprint_tells_a_change()
    {
        var open = new FirewallSpec("work", FirewallAction.Accept, []);
        var filter = XElement.Parse(NetworkXml.Firewall(open));
        Assert.Empty(filter.Elements("rule"));

        // As libvirt gives it back: with a UUID and its own whitespace, it still describes the same firewall.
        var fromLibvirt = XElement.Parse(NetworkXml.Firewall(open, Guid.NewGuid()).Replace("><", ">\n  <"));
        Assert.True(NetworkXml.Describes(fromLibvirt, open));
        Assert.False(NetworkXml.Describes(fromLibvirt, new FirewallSpec("work", FirewallAction.Drop, [])));
        Assert.False(NetworkXml.Describes(fromLibvirt, new FirewallSpec("work", FirewallAction.Accept, [new FirewallRuleSpec(FirewallAction.Drop, "10.0.0.0/8")])));
    }

    [Fact]
    public void An_interface_with_a_firewall_refers_to_it_with_the_address_it_must_send_from()
    {
        var nic = NetworkXml.Interface(new InterfaceSpec("qw-sys-firewall", "00:16:3e:5e:00:07", isolated: true, "10.137.0.7", firewall: "qw-fw-work"), "virtio");
        var filterref = nic.Element("filterref")!;
        Assert.Equal("qw-fw-work", filterref.Attribute("filter")!.Value);
        Assert.Equal(["IP=10.137.0.7", "MAC=00:16:3e:5e:00:07"], filterref.Elements("parameter").Select(p => $"{p.Attribute("name")!.Value}={p.Attribute("value")!.Value}"));
        Assert.Throws<ArgumentException>(() => new InterfaceSpec("qw-sys-firewall", "00:16:3e:5e:00:07", true, "10.137.0.7", firewall: "clean-traffic"));
    }

    [Fact]
    public void The_editor_names_the_first_wrong_rule_and_what_to_write()
    {
        var draft = new FirewallDraft();
        draft.Limit();
        draft.Rows.Add(new FirewallRowDraft { Action = FirewallAction.Accept, Protocol = FirewallProtocol.Tcp, Ports = "https" });

        var e = Assert.Throws<QubeRuleException>(() => draft.ToFirewall("work"));
        Assert.Equal("Rule 2: 'https' is not a port: write one port (443) or a range (8000-8080).", e.Message);

        draft.Rows[1].Ports = "443";
        var firewall = draft.ToFirewall("work");
        Assert.Equal(FirewallAction.Drop, firewall.Policy);
        // Limiting starts with DNS allowed, as Qube Manager does.
        Assert.Equal(new FirewallRuleSpec(FirewallAction.Accept, FirewallDraft.DnsNetwork, FirewallProtocol.Udp, 53), firewall.Rules[0].Rule);
        Assert.Equal(new FirewallRuleSpec(FirewallAction.Accept, null, FirewallProtocol.Tcp, 443), firewall.Rules[1].Rule);
    }
}
