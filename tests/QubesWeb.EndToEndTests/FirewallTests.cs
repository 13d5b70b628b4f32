// A qube's firewall edited in the browser on the demo estate: limited to its rules with one added, saved (the demo's
// test driver enforces nothing, which the page says), and the network map then marks the qube as limited.
using QubesWeb.Data.Qubes;
using QubesWeb.Hypervisor.Networks;

namespace QubesWeb.EndToEndTests;

public sealed class FirewallTests(BrowserFixture browser) : IClassFixture<BrowserFixture>
{
    [Fact]
    public async Task A_rule_added_on_the_qube_page_is_saved_and_the_map_shows_the_qube_limited()
    {
        await using var tab = await browser.OpenConsoleAsync();
        var (host, page) = tab;
        await ConsolePage.OpenAsync(page, "/qubes/work");
        var card = page.Locator("#qube-firewall");
        await Expect(card.Locator("#firewall-summary")).ToHaveTextAsync("allows all");

        await card.GetByText("Limit outgoing traffic to what the rules accept").ClickAsync();
        // Name lookups stay allowed: the first rule is there already.
        await Expect(card.Locator("tr[data-rule='1'] .qw-fw-destination input")).ToHaveValueAsync("10.139.1.0/30");
        await card.Locator("#firewall-add").ClickAsync();
        var rule = card.Locator("tr[data-rule='2']");
        await rule.Locator(".qw-fw-protocol").ClickAsync();
        await page.Locator(".mud-popover-open .mud-list-item").GetByText("tcp", new() { Exact = true }).ClickAsync();
        await rule.Locator(".qw-fw-destination input").FillAsync("192.168.1.0/24");
        await rule.Locator(".qw-fw-ports input").FillAsync("443");
        await rule.Locator(".qw-fw-comment input").FillAsync("intranet web");
        await card.Locator("#firewall-save").ClickAsync();

        await Expect(card.Locator("#firewall-outcome")).ToHaveTextAsync("Saved. Demo: libvirt's test driver has no packet filter, so nothing enforces them here.");
        await Expect(card.Locator("#firewall-summary")).ToHaveTextAsync("limited: 2 accept rules");
        await Screenshots.SaveAsync(page, "qube-work-firewall");
        var saved = await host.Get<Inventory>().FirewallOfAsync("work");
        Assert.Equal(FirewallAction.Drop, saved.Policy);
        Assert.Equal(new FirewallRuleSpec(FirewallAction.Accept, "192.168.1.0/24", FirewallProtocol.Tcp, 443), saved.Rules[1].Rule);
        Assert.Equal("intranet web", saved.Rules[1].Comment);

        await ConsolePage.OpenAsync(page, "/network");
        await Expect(page.Locator("li[data-qube='work'] [data-firewall]")).ToHaveTextAsync("firewall: limited");
        await Expect(page.Locator("li[data-qube='personal'] [data-firewall]")).ToHaveCountAsync(0);
        await Screenshots.SaveAsync(page, "network-map-firewall");
    }
}
