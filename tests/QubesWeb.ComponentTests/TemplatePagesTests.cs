// The templates list and a template's page rendered with bUnit over the real monitor, inventory and job engine; the
// hypervisor is the in-memory fake. The seed: fedora-42 serves sys-net (red, running), work (blue, running) and
// default-dvm (gray); debian-13 serves vault (black).
using Microsoft.EntityFrameworkCore;
using QubesWeb.Data.Qubes;
using QubesWeb.Hypervisor.Domains;
using QubeDetailPage = QubesWeb.Components.Pages.Qubes.QubeDetail;
using TemplateDetailPage = QubesWeb.Components.Pages.Templates.TemplateDetail;
using TemplatesPage = QubesWeb.Components.Pages.Templates.Templates;

namespace QubesWeb.ComponentTests;

public sealed class TemplatePagesTests : ConsoleTestContext
{
    private IRenderedComponent<TemplateDetailPage> RenderDetail(string name)
    {
        RenderProviders(dialogs: false, snackbars: false);
        return Render<TemplateDetailPage>(p => p.Add(x => x.Name, name));
    }

    private static IElement? TemplateRow(IRenderedComponent<TemplatesPage> cut, string name) =>
        cut.FindAll($"tr[data-template='{name}']").FirstOrDefault();

    private static IElement? Node(IRenderedComponent<TemplateDetailPage> cut, string name) =>
        cut.FindAll($"[data-dependent='{name}']").FirstOrDefault();

    private static string? StateOf(IRenderedComponent<TemplateDetailPage> cut, string name) =>
        Node(cut, name)?.QuerySelector("[data-state]")?.GetAttribute("data-state");

    private static List<string> Warnings(IRenderedComponent<TemplateDetailPage> cut) =>
        cut.FindAll("[data-warning]").Select(e => e.GetAttribute("data-warning")!).ToList();

    /// <summary>A disposable based on default-dvm, defined in the fake by a real reconciliation.</summary>
    private async Task AddDispVmAsync(string name)
    {
        await Inventory.UpdateAsync("default-dvm", new QubeChanges(Features: new Dictionary<string, string?> { [DisposableFeatures.TemplateForDispvms] = "True" }));
        await Inventory.CreateAsync(new NewQube(name, QubeClass.DispVM, "red", "default-dvm"));
        await Estate.ReconcileAsync();
    }

    [Fact]
    public void The_list_shows_each_template_with_its_dependents_and_how_many_run()
    {
        var cut = Render<TemplatesPage>();

        cut.WaitForAssertion(() => Assert.NotNull(TemplateRow(cut, "fedora-42")), Wait);
        Assert.Equal(["debian-13", "fedora-42"], cut.FindAll("tr[data-template]").Select(r => r.GetAttribute("data-template")));

        var fedora = TemplateRow(cut, "fedora-42")!;
        Assert.Equal("3", fedora.QuerySelector("[data-dependents]")!.GetAttribute("data-dependents"));
        Assert.Equal("2", fedora.QuerySelector("[data-running]")!.GetAttribute("data-running"));
        Assert.Equal("red gray blue", fedora.QuerySelector("[data-labels]")!.GetAttribute("data-labels"));
        Assert.Equal(3, fedora.QuerySelectorAll("[data-labels] .qw-label-dot").Length);
        Assert.Equal("1", fedora.QuerySelector("[data-warnings]")!.GetAttribute("data-warnings"));
        Assert.Contains("300 MiB of 10 GiB", fedora.TextContent);
        Assert.Equal("/templates/fedora-42", fedora.QuerySelector("a.qw-name")!.GetAttribute("href"));

        var debian = TemplateRow(cut, "debian-13")!;
        Assert.Equal("1", debian.QuerySelector("[data-dependents]")!.GetAttribute("data-dependents"));
        Assert.Equal("0", debian.QuerySelector("[data-running]")!.GetAttribute("data-running"));
        Assert.Equal("0", debian.QuerySelector("[data-warnings]")!.GetAttribute("data-warnings"));
        Assert.Contains("no root volume", debian.TextContent);
    }

    [Fact]
    public async Task The_list_counts_a_DispVM_as_a_dependent_of_its_AppVMs_template()
    {
        await AddDispVmAsync("disp1");

        var cut = Render<TemplatesPage>();

        cut.WaitForAssertion(() => Assert.Equal("4", TemplateRow(cut, "fedora-42")?.QuerySelector("[data-dependents]")?.GetAttribute("data-dependents")), Wait);
    }

    [Fact]
    public void The_list_follows_a_dependent_starting_outside_the_console()
    {
        var cut = Render<TemplatesPage>();
        cut.WaitForAssertion(() => Assert.Equal("0", TemplateRow(cut, "debian-13")?.QuerySelector("[data-running]")?.GetAttribute("data-running")), Wait);

        Hypervisor.Start("vault");

        cut.WaitForAssertion(() => Assert.Equal("1", TemplateRow(cut, "debian-13")!.QuerySelector("[data-running]")!.GetAttribute("data-running")), Wait);
    }

    [Fact]
    public async Task The_detail_shows_the_dependents_as_a_tree_with_a_DispVM_under_its_AppVM()
    {
        await AddDispVmAsync("disp1");

        var cut = RenderDetail("fedora-42");

        cut.WaitForAssertion(() => Assert.NotNull(Node(cut, "disp1")), Wait);
        Assert.Equal("fedora-42", cut.Find("#template-name").TextContent.Trim());
        var tree = cut.Find("#dependents-tree");
        var appVms = tree.Children.Where(c => c.LocalName == "li").ToList();
        Assert.Equal(["default-dvm", "sys-net", "work"], appVms.Select(li => li.QuerySelector("[data-dependent]")!.GetAttribute("data-dependent")));
        // disp1 sits inside default-dvm's branch, and in no other.
        var dvmBranch = appVms[0];
        Assert.NotNull(dvmBranch.QuerySelector("[data-dependent='disp1']"));
        Assert.All(appVms.Skip(1), li => Assert.Null(li.QuerySelector("[data-dependent='disp1']")));
        Assert.Equal("/qubes/disp1", Node(cut, "disp1")!.QuerySelector("a")!.GetAttribute("href"));
        Assert.Equal("/qubes/work", Node(cut, "work")!.QuerySelector("a")!.GetAttribute("href"));
        Assert.Equal("running", StateOf(cut, "work"));
        Assert.Equal("halted", StateOf(cut, "disp1"));
        Assert.Contains("background-color:#cc0000", Node(cut, "sys-net")!.QuerySelector(".qw-label-dot")!.GetAttribute("style")!.Replace(" ", ""));
        Assert.Contains("4 qube(s), 2 running", cut.Find("#dependents-summary").TextContent);
    }

    [Fact]
    public void The_detail_shows_the_templates_volumes_with_sizes_and_usage()
    {
        var cut = RenderDetail("fedora-42");

        cut.WaitForAssertion(() => Assert.NotNull(cut.Find("#template-volumes")), Wait);
        var root = cut.Find("tr[data-volume='root']").QuerySelectorAll("td").Select(td => td.TextContent.Trim()).ToList();
        Assert.Contains("10 GiB", root);
        Assert.Contains("300 MiB", root);
        var priv = cut.Find("tr[data-volume='private']").QuerySelectorAll("td").Select(td => td.TextContent.Trim()).ToList();
        Assert.Contains("2.0 GiB", priv);
        Assert.Contains("20 MiB", priv);
        Assert.Equal("/qubes", cut.Find("#to-qubes-list").GetAttribute("href"));
    }

    [Fact]
    public void A_state_change_raised_by_the_hypervisor_re_renders_the_dependents_state()
    {
        var cut = RenderDetail("fedora-42");
        cut.WaitForAssertion(() => Assert.Equal("running", StateOf(cut, "work")), Wait);

        Hypervisor.SetState("work", RunState.Paused, DomainChangeKind.Suspended);

        cut.WaitForAssertion(() => Assert.Equal("paused", StateOf(cut, "work")), Wait);

        Hypervisor.SetState("work", RunState.Halted, DomainChangeKind.Stopped);

        cut.WaitForAssertion(() =>
        {
            Assert.Equal("halted", StateOf(cut, "work"));
            Assert.Contains("3 qube(s), 1 running", cut.Find("#dependents-summary").TextContent);
        }, Wait);
    }

    [Fact]
    public async Task The_trust_warning_appears_when_red_and_black_qubes_share_a_template()
    {
        await Inventory.CreateAsync(new NewQube("untrusted", QubeClass.AppVM, "red", "debian-13"));

        var cut = RenderDetail("debian-13");

        cut.WaitForAssertion(() => Assert.Equal(["trust-spread"], Warnings(cut)), Wait);
        var text = cut.Find("[data-warning='trust-spread']").TextContent;
        Assert.Contains("red (untrusted)", text);
        Assert.Contains("black (vault)", text);
        Assert.Contains("as trusted as the most trusted qube based on it", text);
        Assert.Equal("black", cut.Find("#effective-trust").GetAttribute("data-label"));
        Assert.Equal(["red", "black"], cut.FindAll("#labels-served [data-label]").Select(e => e.GetAttribute("data-label")));
        Assert.Empty(cut.FindAll("#no-warnings"));
    }

    [Fact]
    public async Task No_trust_warning_appears_when_the_labels_a_template_serves_are_close()
    {
        await Inventory.CreateAsync(new NewQube("mail", QubeClass.AppVM, "purple", "debian-13"));
        await Inventory.CreateAsync(new NewQube("work-2", QubeClass.AppVM, "blue", "debian-13"));

        var cut = RenderDetail("debian-13");

        cut.WaitForAssertion(() => Assert.Equal(["blue", "purple", "black"], cut.FindAll("#labels-served [data-label]").Select(e => e.GetAttribute("data-label"))), Wait);
        Assert.Empty(Warnings(cut));
        Assert.NotNull(cut.Find("#no-warnings"));
        Assert.Equal("black", cut.Find("#effective-trust").GetAttribute("data-label"));
    }

    [Fact]
    public void A_templates_page_offers_no_netvm_and_says_why()
    {
        RenderProviders(dialogs: false);

        var cut = Render<QubeDetailPage>(p => p.Add(x => x.Name, "fedora-42"));

        cut.WaitForElement("input#qube-netvm", Wait);
        Assert.True(cut.Find("input#qube-netvm").HasAttribute("disabled"));
        Assert.Contains(QubeRules.TemplatesOffline, cut.Find("#qube-properties").TextContent);
    }

    [Fact]
    public async Task A_template_with_a_netvm_from_an_older_inventory_gets_the_netvm_warning()
    {
        // The console no longer gives a template a netvm; an inventory made before that rule may still hold one.
        Assert.Contains("templates are kept offline", (await Assert.ThrowsAsync<QubeRuleException>(() => Inventory.UpdateAsync("debian-13", new QubeChanges(NetVm: "sys-net")))).Message);
        await using (var db = await Services.GetRequiredService<Microsoft.EntityFrameworkCore.IDbContextFactory<QubesWeb.Data.InventoryDbContext>>().CreateDbContextAsync())
        {
            var template = db.Qubes.Single(q => q.Name == "debian-13");
            template.NetVmId = db.Qubes.Single(q => q.Name == "sys-net").Id;
            await db.SaveChangesAsync();
        }

        var cut = RenderDetail("debian-13");

        cut.WaitForAssertion(() => Assert.Equal(["netvm"], Warnings(cut)), Wait);
        Assert.Contains("debian-13 has a netvm (sys-net)", cut.Find("[data-warning='netvm']").TextContent);
        Assert.Equal("sys-net", cut.Find("#template-netvm").TextContent.Trim());
    }

    [Fact]
    public void A_template_without_a_netvm_gets_no_netvm_warning()
    {
        var cut = RenderDetail("debian-13");

        cut.WaitForAssertion(() => Assert.NotNull(cut.Find("#no-warnings")), Wait);
        Assert.Empty(Warnings(cut));
        Assert.Equal("none (templates stay offline)", cut.Find("#template-netvm").TextContent.Trim());
    }

    [Fact]
    public void A_name_that_is_not_a_template_says_so_and_links_back()
    {
        var cut = RenderDetail("work");

        cut.WaitForAssertion(() => Assert.Contains("'work' is an AppVM, not a TemplateVM", cut.Find("#not-a-template").TextContent), Wait);
        Assert.Equal("/templates", cut.Find("#back-to-templates").GetAttribute("href"));
        Assert.Empty(cut.FindAll("#dependents-tree"));
    }

    [Fact]
    public void A_name_that_is_no_qube_says_so_and_links_back()
    {
        var cut = RenderDetail("no-such-qube");

        cut.WaitForAssertion(() => Assert.Contains("There is no qube named 'no-such-qube'.", cut.Find("#not-a-template").TextContent), Wait);
        Assert.Equal("/templates", cut.Find("#back-to-templates").GetAttribute("href"));
    }

    [Fact]
    public async Task A_template_says_which_updates_proxy_it_goes_through_and_another_UpdateVM_can_be_chosen()
    {
        await Inventory.CreateAsync(new NewQube("sys-firewall", QubeClass.AppVM, "green", "fedora-42", "sys-net", ProvidesNetwork: true));
        var sysNet = await Inventory.GetAsync("sys-net");
        var cut = RenderDetail("fedora-42");

        // The default: sys-net's proxy, on its address.
        cut.WaitForAssertion(() => Assert.Equal($"Through sys-net (the default) at {sysNet.IpAddress}:8082.",
            System.Text.RegularExpressions.Regex.Replace(cut.Find("#template-proxy-route").TextContent, @"\s+", " ").Trim()), Wait);

        var select = cut.FindComponents<MudSelect<string>>().Single(s => s.Instance.Label == "UpdateVM");
        await cut.InvokeAsync(() => select.Instance.ValueChanged.InvokeAsync("sys-firewall"));

        cut.WaitForAssertion(() => Assert.Equal("sys-firewall", cut.Find("#template-proxy-route").GetAttribute("data-updatevm")), Wait);
        Assert.Equal("sys-firewall", (await Inventory.GetAsync("fedora-42")).UpdateVm?.Name);
        // The UpdateVM a template uses cannot vanish under it.
        Assert.Contains("is the UpdateVM of 1 template(s): fedora-42", (await Assert.ThrowsAsync<QubeRuleException>(() => Inventory.EnsureRemovableAsync("sys-firewall"))).Message);
    }

    [Fact]
    public async Task A_template_with_no_UpdateVM_to_go_through_says_what_to_choose()
    {
        await Inventory.CreateAsync(new NewQube("sys-vpn", QubeClass.AppVM, "blue", "fedora-42", ProvidesNetwork: true));
        await Inventory.UpdateAsync("fedora-42", new QubeChanges(UpdateVm: "sys-vpn"));
        Assert.Contains("'work' does not provide network",
            (await Assert.ThrowsAsync<QubeRuleException>(() => Inventory.UpdateAsync("fedora-42", new QubeChanges(UpdateVm: "work")))).Message);
        Assert.Contains("Only a template has an UpdateVM",
            (await Assert.ThrowsAsync<QubeRuleException>(() => Inventory.UpdateAsync("work", new QubeChanges(UpdateVm: "sys-net")))).Message);

        // Back to the default, where there is no sys-net: said, with what to do.
        await Inventory.UpdateAsync("fedora-42", new QubeChanges(DefaultUpdateVm: true));
        await using (var db = await Contexts.CreateDbContextAsync())
            await db.Qubes.Where(q => q.Name == "sys-net").ExecuteUpdateAsync(u => u.SetProperty(q => q.Name, "sys-net-old"));
        var cut = RenderDetail("fedora-42");
        cut.WaitForAssertion(() => Assert.Equal("'fedora-42' has no UpdateVM: there is no qube named 'sys-net' (the default); choose one on its page.",
            cut.Find("#template-proxy-problem").TextContent.Trim()), Wait);
    }
}
