using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace QubesWeb.Migrations.Migrations
{
    /// <inheritdoc />
    public partial class TemplateUpdateVms : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.AddColumn<int>(
                name: "UpdateVmId",
                table: "Qubes",
                type: "INTEGER",
                nullable: true);

            migrationBuilder.CreateIndex(
                name: "IX_Qubes_UpdateVmId",
                table: "Qubes",
                column: "UpdateVmId");

            migrationBuilder.AddForeignKey(
                name: "FK_Qubes_Qubes_UpdateVmId",
                table: "Qubes",
                column: "UpdateVmId",
                principalTable: "Qubes",
                principalColumn: "Id",
                onDelete: ReferentialAction.Restrict);
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropForeignKey(
                name: "FK_Qubes_Qubes_UpdateVmId",
                table: "Qubes");

            migrationBuilder.DropIndex(
                name: "IX_Qubes_UpdateVmId",
                table: "Qubes");

            migrationBuilder.DropColumn(
                name: "UpdateVmId",
                table: "Qubes");
        }
    }
}
