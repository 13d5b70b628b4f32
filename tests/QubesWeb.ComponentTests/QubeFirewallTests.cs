// The firewall card of a qube's page, rendered with bUnit over the real inventory and commands (the hypervisor is the
// in-memory fake): limit a qube's traffic, add a rule, save, and see libvirt's filter hold them; a wrong rule is named
// in place and nothing is saved; a driver with no packet filter and a qube on no netvm are said as they are.
using Microsoft.AspNetCore.Components.Web;
using QubesWeb.Hypervisor.Networks;
using QubeDetailPage = QubesWeb.Components.Pages.Qubes.QubeDetail;

namespace QubesWeb.ComponentTests;

public sealed class QubeFirewallTests : ConsoleTestContext
{
    private IRenderedComponent<QubeDetailPage> RenderPage(string name)
    {
        RenderProviders();
        var cut = Render<QubeDetailPage>(p => p.Add(x => x.Name, name));
        cut.WaitForAssertion(() => Assert.Single(cut.FindAll("#qube-title")), Wait);
        return cut;
    }

    private static Task LimitAsync(IRenderedComponent<QubeDetailPage> cut) =>
        cut.InvokeAsync(() => cut.FindComponent<MudRadioGroup<FirewallAction>>().Instance.ValueChanged.InvokeAsync(FirewallAction.Drop));

    private static async Task AddTcpRuleAsync(IRenderedComponent<QubeDetailPage> cut, string destination, string ports)
    {
        await cut.InvokeAsync(() => cut.Find("#firewall-add").ClickAsync(new MouseEventArgs()));
        var rule = cut.FindAll("tr.qw-firewall-rule").Count;
        await cut.InvokeAsync(() => cut.FindComponents<MudSelect<FirewallProtocol>>()[rule - 1].Instance.ValueChanged.InvokeAsync(FirewallProtocol.Tcp));
        await cut.InvokeAsync(() => cut.Find($"tr[data-rule='{rule}'] .qw-fw-destination input").Input(destination));
        await cut.InvokeAsync(() => cut.Find($"tr[data-rule='{rule}'] .qw-fw-ports input").Input(ports));
    }

    private static Task SaveAsync(IRenderedComponent<QubeDetailPage> cut) =>
        cut.InvokeAsync(() => cut.Find("#firewall-save").ClickAsync(new MouseEventArgs()));

    [Fact]
    public async Task Limiting_a_running_qube_to_its_rules_is_saved_and_enforced_at_once()
    {
        var cut = RenderPage("work");
        Assert.Contains("Enforced by dom0 on work's interface to sys-net", cut.Find("#firewall-where").TextContent);
        Assert.Equal("allows all", cut.Find("#firewall-summary").TextContent.Trim());

        await LimitAsync(cut);
        // Limiting starts with name lookups allowed, as Qube Manager does.
        Assert.Equal("10.139.1.0/30", cut.Find("tr[data-rule='1'] .qw-fw-destination input").GetAttribute("value"));
        await AddTcpRuleAsync(cut, "192.168.1.0/24", "443");
        await SaveAsync(cut);

        cut.WaitForAssertion(() => Assert.Equal("Saved and enforced: libvirt applied the rules to work's running interface at once.",
            cut.Find("#firewall-outcome").TextContent.Trim()), Wait);
        Assert.Equal("limited: 2 accept rules", cut.Find("#firewall-summary").TextContent.Trim());
        var filter = Hypervisor.Firewalls[FirewallSpec.NameFor("work")];
        Assert.Equal(FirewallAction.Drop, filter.Policy);
        Assert.Equal([new FirewallRuleSpec(FirewallAction.Accept, "10.139.1.0/30", FirewallProtocol.Udp, 53),
                      new FirewallRuleSpec(FirewallAction.Accept, "192.168.1.0/24", FirewallProtocol.Tcp, 443)], filter.Rules);
        Assert.True(cut.Find("#firewall-save").HasAttribute("disabled"));
    }

    [Fact]
    public async Task A_wrong_rule_is_named_in_place_and_nothing_is_saved()
    {
        var cut = RenderPage("work");
        await AddTcpRuleAsync(cut, "intranet.example", "");
        await SaveAsync(cut);

        cut.WaitForAssertion(() => Assert.Equal(
            "Rule 1: 'intranet.example' is not an IPv4 address or network: write 192.168.1.10 or 192.168.1.0/24. Host names cannot be used: dom0 resolves no names.",
            cut.Find("#firewall-error").TextContent.Trim()), Wait);
        Assert.Empty((await Inventory.FirewallOfAsync("work")).Rules);
        Assert.False(Hypervisor.Firewalls.TryGetValue(FirewallSpec.NameFor("work"), out var f) && f.Rules.Count > 0);

        // Discard brings back what is saved.
        await cut.InvokeAsync(() => cut.Find("#firewall-discard").ClickAsync(new MouseEventArgs()));
        Assert.Single(cut.FindAll("#firewall-no-rules"));
    }

    [Fact]
    public async Task Without_a_packet_filter_the_save_says_nothing_enforces_the_rules()
    {
        Hypervisor.HasPacketFilter = false;
        var cut = RenderPage("devbox");
        await AddTcpRuleAsync(cut, "10.0.0.1", "22");
        await SaveAsync(cut);
        cut.WaitForAssertion(() => Assert.Equal("Saved. Demo: libvirt's test driver has no packet filter, so nothing enforces them here.",
            cut.Find("#firewall-outcome").TextContent.Trim()), Wait);
        Assert.Single((await Inventory.FirewallOfAsync("devbox")).Rules);
    }

    [Fact]
    public async Task A_qube_on_no_netvm_keeps_its_rules_for_later_and_a_template_has_no_firewall_card()
    {
        var cut = RenderPage("vault");
        Assert.Contains("vault is on no netvm, so it has no interface to filter", cut.Find("#firewall-where").TextContent);
        await LimitAsync(cut);
        await SaveAsync(cut);
        cut.WaitForAssertion(() => Assert.Equal("Saved. vault is on no netvm: the rules apply once it has one.", cut.Find("#firewall-outcome").TextContent.Trim()), Wait);

        var template = Render<QubeDetailPage>(p => p.Add(x => x.Name, "fedora-42"));
        template.WaitForAssertion(() => Assert.Single(template.FindAll("#qube-title")), Wait);
        Assert.Empty(template.FindAll("#qube-firewall"));
    }
}
