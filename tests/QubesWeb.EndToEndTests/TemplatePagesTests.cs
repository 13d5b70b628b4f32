// The templates pages as a user sees them on the demo estate, in headless Chromium. The demo's fedora-42 serves
// red qubes (sys-net, sys-usb, untrusted) next to blue work and purple research: the trust warning's case.
using QubesWeb.Data.Qubes;
using QubesWeb.Services.Estate;

namespace QubesWeb.EndToEndTests;

public sealed class TemplatePagesTests(BrowserFixture browser) : IClassFixture<BrowserFixture>
{
    [Fact]
    public async Task FromTheTemplatesListTheUserReachesFedorasTreeAndItsTrustWarning()
    {
        await using var tab = await browser.OpenConsoleAsync();
        var (host, page) = tab;
        // The demo has no DispVM: one based on default-dvm shows the tree's second level.
        await host.Get<Inventory>().CreateAsync(new NewQube("disp1", QubeClass.DispVM, "gray", "default-dvm"));
        await host.Get<EstateMonitor>().ReconcileAsync();
        await ConsolePage.OpenAsync(page, "/templates");
        var fedora = page.Locator("#templates-table tr[data-template='fedora-42']");
        await Expect(page.Locator("#templates-table tr[data-template]")).ToHaveCountAsync(2);
        // sys-net, sys-firewall, sys-usb, work, personal, untrusted, social, research, default-dvm, disp1; of them the
        // demo boots its autostart ones: sys-net, sys-firewall, work, personal (mail, also autostart, is debian's).
        await Expect(fedora.Locator("[data-dependents]")).ToHaveAttributeAsync("data-dependents", "10");
        await Expect(fedora.Locator("[data-running]")).ToHaveAttributeAsync("data-running", "4");
        await Expect(fedora.Locator("[data-warnings]")).ToHaveAttributeAsync("data-warnings", "1");
        await Screenshots.SaveAsync(page, "templates");

        await fedora.GetByRole(AriaRole.Link, new LocatorGetByRoleOptions { Name = "fedora-42", Exact = true }).ClickAsync();

        await Expect(page).ToHaveURLAsync(host.BaseUrl + "/templates/fedora-42");
        var tree = page.Locator("#dependents-tree");
        await Expect(tree.Locator("[data-dependent='work']")).ToBeVisibleAsync();
        await Expect(tree.Locator("[data-dependent='sys-net']")).ToBeVisibleAsync();
        // disp1 sits in default-dvm's branch of the tree.
        await Expect(tree.Locator("li").Filter(new LocatorFilterOptions { Has = page.Locator("[data-dependent='default-dvm']") })
            .Locator("[data-dependent='disp1']")).ToBeVisibleAsync();
        await Expect(tree.Locator("[data-dependent='work'] [data-state]")).ToHaveAttributeAsync("data-state", "running");
        await Expect(tree.Locator("[data-dependent='sys-net'] a")).ToHaveAttributeAsync("href", "/qubes/sys-net");
        var warning = page.Locator("[data-warning='trust-spread']");
        await Expect(warning).ToBeVisibleAsync();
        await Expect(warning).ToContainTextAsync("red (sys-net, sys-usb, untrusted)");
        await Expect(warning).ToContainTextAsync("purple (research)");
        await Expect(page.Locator("[data-warning='netvm']")).ToHaveCountAsync(0);
        await Expect(page.Locator("#effective-trust")).ToHaveAttributeAsync("data-label", "purple");
        await Expect(page.Locator("#template-volumes tr[data-volume='root']")).ToContainTextAsync("10 GiB");
        await Screenshots.SaveAsync(page, "template-fedora-42");
    }
}
